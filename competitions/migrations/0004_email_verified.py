from django.db import migrations, models
from django.utils import timezone


def superusers_are_confirmed(apps, schema_editor):
    # No existing address was ever proven, so every account starts unconfirmed: the first time an
    # allow-list matters, its owner is asked to open a link (everything else keeps working).
    # Superusers are the exception: an operator created them (createsuperuser or the admin) and
    # vouches for the address, and an operator must not be locked out of a check they set up.
    User = apps.get_model("competitions", "User")
    User.objects.filter(is_superuser=True, email_verified_at__isnull=True).update(email_verified_at=timezone.now())


class Migration(migrations.Migration):
    dependencies = [("competitions", "0003_split_secret_training_file")]

    operations = [
        migrations.AddField(
            model_name="user",
            name="email_verified_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When the user opened the link sent to this address. Cleared when the address changes.",
                null=True,
                verbose_name="e-mail confirmed at",
            ),
        ),
        migrations.RunPython(superusers_are_confirmed, migrations.RunPython.noop),
    ]
