from django.apps import AppConfig


class CompetitionsConfig(AppConfig):
    name = "competitions"
    verbose_name = "Competitions"

    def ready(self) -> None:
        from competitions import ratelimit

        # A malformed HOLDOUT_RATELIMIT_* stops the start, not the first sign-in.
        ratelimit.check_limits()
