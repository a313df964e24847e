"""The Celery app built from the environment: `celery -A workers.main worker`."""

from storage import logs
from storage.settings import Settings
from workers import cores, scheduler
from workers.app import create_celery

settings = Settings.from_env()
logs.configure(settings.log_level, settings.log_format)
app = create_celery(settings)
scheduler.install(app)
cores.install(app)
