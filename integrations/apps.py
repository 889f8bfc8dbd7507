from django.apps import AppConfig
from django.db.models.signals import post_migrate


class IntegrationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "integrations"
    verbose_name = "連携"

    def ready(self) -> None:
        # STYLE.md says "no logic in signals"; this receiver is the accepted exception: it only
        # calls one idempotent service, so that `migrate` is the whole deploy (the dispatcher
        # schedule exists without a separate step).
        post_migrate.connect(declare_schedules, sender=self, dispatch_uid="integrations.schedules")
        # A cluster's SIGTERM reaches its workers: they hand their runs back (integrations.queue).
        from .queue import install_stop_relay

        install_stop_relay()
        # The audit trail (変更履歴): settings and members, secrets masked (integrations.audit).
        from .audit import register

        register()


def declare_schedules(sender, *, using: str = "default", verbosity: int = 1, **kwargs) -> None:
    """After every migrate: the django-q2 schedules, by name (integrations.queue)."""
    from django.db import connections
    from django_q.models import Schedule

    if Schedule._meta.db_table not in connections[using].introspection.table_names():
        return  # django_q is not migrated (yet) on this database
    from .queue import ensure_schedules

    schedules = ensure_schedules()
    if verbosity >= 2:
        print(f"  Declared django-q2 schedules: {', '.join(s.name for s in schedules)}")
