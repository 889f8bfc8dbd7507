"""Create (or bring up to date) the support desk's group, and optionally put staff in it."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Q

GROUP_NAME = "サポート"
# View everything of the portal, its audit trail (変更履歴), the task queue and the login
# lock-outs.
VIEW_APPS = ["integrations", "django_q", "auditlog", "axes"]
# Edit customers' ordinary settings (secrets and the subscription stay superuser-only: the
# admin enforces that), trigger runs ("add_syncrun" is this project's "may trigger runs"), and
# unlock a locked-out login ("delete_accessattempt": the lock-outs admin's unlock action).
EXTRA_PERMISSIONS = [
    ("integrations", "change_tenant"),
    ("integrations", "change_connectsetting"),
    ("integrations", "add_syncrun"),
    # メンバー管理 for customers: roles, deactivation, invitations.
    ("integrations", "change_tenantmembership"),
    ("axes", "delete_accessattempt"),
]


def support_permissions():
    extra = Q()
    for app_label, codename in EXTRA_PERMISSIONS:
        extra |= Q(content_type__app_label=app_label, codename=codename)
    return Permission.objects.filter(
        Q(content_type__app_label__in=VIEW_APPS, codename__startswith="view_") | extra
    )


class Command(BaseCommand):
    help = (
        f"「{GROUP_NAME}」グループを作成・更新します(全データの閲覧、連携の実行、"
        "テナント設定の変更、ログインのロック解除。シークレットと契約状態はスーパーユーザーのみ)。"
        "ユーザー名を渡すと、そのユーザーをスタッフにしてグループに加えます。"
    )

    def add_arguments(self, parser):
        parser.add_argument("usernames", nargs="*", help="グループに加えるユーザー名")

    @transaction.atomic
    def handle(self, *args, usernames, **options):
        group, created = Group.objects.get_or_create(name=GROUP_NAME)
        permissions = list(support_permissions())
        group.permissions.set(permissions)
        self.stdout.write(
            f"{'作成' if created else '更新'}: {GROUP_NAME} ({len(permissions)} permissions)"
        )
        User = get_user_model()
        for username in usernames:
            try:
                user = User.objects.get(username=username)
            except User.DoesNotExist:
                raise CommandError(f"ユーザー {username} は存在しません。") from None
            if not user.is_staff:
                user.is_staff = True
                user.save(update_fields=["is_staff"])
            user.groups.add(group)
            self.stdout.write(f"追加: {username}")
