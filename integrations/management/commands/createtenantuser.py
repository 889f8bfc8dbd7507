"""createtenantuser SLUG USERNAME [--password P] [--role admin|viewer]: a tenant account
(SPEC 6); an administrator (管理者) unless --role viewer (閲覧者)."""

from __future__ import annotations

import getpass

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from integrations.models import Tenant, TenantMembership


class Command(BaseCommand):
    help = "Create a tenant administrator account for the tenant named by SLUG."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("username")
        parser.add_argument("--password", help="Asked for interactively when not given.")
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--role",
            choices=TenantMembership.Role.values,
            default=TenantMembership.Role.ADMIN,
            help="admin (管理者, the default) or viewer (閲覧者).",
        )

    def handle(
        self,
        *args,
        slug: str,
        username: str,
        password: str | None,
        email: str,
        role: str = TenantMembership.Role.ADMIN,
        **options,
    ):
        try:
            tenant = Tenant.objects.get(slug=slug)
        except Tenant.DoesNotExist:
            raise CommandError(f"No tenant with slug {slug!r}.") from None
        User = get_user_model()
        # The admin's own rules for a username (required, the username validator, its length):
        # a blank or whitespace name is refused here, never saved.
        field = User._meta.get_field(User.USERNAME_FIELD)
        try:
            username = field.clean(User.normalize_username(username), None)
        except ValidationError as exc:
            raise CommandError("Username refused: " + " ".join(exc.messages)) from None
        if User.objects.filter(username=username).exists():
            raise CommandError(f"A user named {username!r} already exists.")
        if password is None:
            password = self._ask_password(username)
        with transaction.atomic():
            user = User(username=username, email=email)
            try:
                validate_password(password, user)
            except ValidationError as exc:
                raise CommandError("Password refused: " + " ".join(exc.messages)) from None
            user.set_password(password)
            user.save()
            TenantMembership.objects.create(user=user, tenant=tenant, role=role)
        what = "administrator" if role == TenantMembership.Role.ADMIN else "viewer"
        self.stdout.write(f"Created tenant {what} {username!r} for {tenant.name} ({slug}).")

    def _ask_password(self, username: str) -> str:
        for _attempt in range(3):
            first = getpass.getpass(f"Password for {username}: ")
            second = getpass.getpass("Password (again): ")
            if first and first == second:
                return first
            self.stderr.write("Passwords are empty or do not match; try again.")
        raise CommandError("No password given.")
