"""The WSGI entry point for gunicorn: `gunicorn api.wsgi:app`."""

from api.app import create_app
from storage import logs
from storage.settings import Settings

settings = Settings.from_env()
logs.configure(settings.log_level, settings.log_format)
app = create_app(settings)
