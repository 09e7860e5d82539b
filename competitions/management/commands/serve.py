"""Run the web server and a Celery worker together (what `make demo` uses).

One process supervises both children: Ctrl-C or SIGTERM stops them together, and if either
dies the other is stopped too, so nothing is left running in the background.
"""

import importlib.util
import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve the site on 127.0.0.1:PORT with a Celery worker (and beat) beside it."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--concurrency", type=int, default=2)

    def handle(self, *args, port: int, concurrency: int, **options) -> None:
        python = sys.executable
        worker = [
            python,
            "-m",
            "celery",
            "-A",
            "workers.celery_app",
            "worker",
            "--beat",
            "--schedule",
            os.path.join("var", "celerybeat-schedule"),
            "--queues",
            "scoring,default",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "INFO",
        ]
        web = [python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
        children = [subprocess.Popen(worker), subprocess.Popen(web)]
        if importlib.util.find_spec("tensorflow") is not None:
            # Keras models are scored by a worker of their own: one job at a time (solo pool),
            # with a pre-started TensorFlow child kept warm (HOLDOUT_MODEL_WORKER).
            models = [
                python,
                "-m",
                "celery",
                "-A",
                "workers.celery_app",
                "worker",
                "--pool",
                "solo",
                "--queues",
                "models",
                "--hostname",
                "models@%h",
                "--loglevel",
                "INFO",
            ]
            children.append(subprocess.Popen(models, env={**os.environ, "HOLDOUT_MODEL_WORKER": "1"}))
        else:
            self.stdout.write("TensorFlow is not installed: model challenges will wait for a model worker.")
        self.stdout.write(self.style.SUCCESS(f"Holdout is on http://127.0.0.1:{port}/ — Ctrl-C stops it."))

        def stop(*_: object) -> None:
            for child in children:
                if child.poll() is None:
                    child.terminate()
            deadline = time.monotonic() + 10
            for child in children:
                try:
                    child.wait(timeout=max(deadline - time.monotonic(), 0.1))
                except subprocess.TimeoutExpired:
                    child.kill()
            raise SystemExit(0)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        stop()
