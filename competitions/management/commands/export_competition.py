from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from competitions.bundles import export_competition
from competitions.models import Competition


class Command(BaseCommand):
    help = "Write a competition (settings, pages, data files, solution) to a bundle zip."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("path", type=Path)

    def handle(self, *args, slug: str, path: Path, **options) -> None:
        competition = Competition.objects.filter(slug=slug).first()
        if competition is None:
            raise CommandError(f"No competition with slug {slug!r}.")
        export_competition(competition, path)
        self.stdout.write(self.style.SUCCESS(f"Exported {slug} to {path}"))
