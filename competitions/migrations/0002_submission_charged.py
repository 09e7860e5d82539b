from django.db import migrations, models


def failed_were_free(apps, schema_editor):
    # Until now every failed submission was free; keep it that way for the existing rows.
    Submission = apps.get_model("competitions", "Submission")
    Submission.objects.filter(status="failed").update(charged=False)


class Migration(migrations.Migration):
    dependencies = [("competitions", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="submission",
            name="charged",
            field=models.BooleanField(
                default=True,
                help_text="Counts against the team's limits. Cleared when a submission fails because of "
                "its file's format or a problem on the platform's side; kept when it fails at metric time.",
            ),
        ),
        migrations.RunPython(failed_were_free, migrations.RunPython.noop),
    ]
