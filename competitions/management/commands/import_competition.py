from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from competitions.bundles import import_competition


class Command(BaseCommand):
    help = "Create a competition from a bundle zip written by export_competition."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path)

    def handle(self, *args, path: Path, **options) -> None:
        try:
            competition = import_competition(path)
        except ValidationError as exc:
            raise CommandError("The bundle was not imported:\n- " + "\n- ".join(exc.messages)) from None
        self.stdout.write(self.style.SUCCESS(f"Imported {competition.slug}"))
