import os
import secrets
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from titanflow.access import ROLES
from titanflow.users import user_create


class Command(BaseCommand):
    help = (
        "Create a user in one role (admin, marketer or viewer). Without --password-env or "
        "--password-stdin a strong password is generated and printed once."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--role", required=True, choices=ROLES, help="What the user may do: " + ", ".join(ROLES)
        )
        parser.add_argument("--username", required=True, help="The login name; must be new.")
        parser.add_argument("--email", default="", help="Optional e-mail address.")
        source = parser.add_mutually_exclusive_group()
        source.add_argument(
            "--password-env",
            metavar="VAR",
            help="Read the password from this environment variable instead of generating one.",
        )
        source.add_argument(
            "--password-stdin",
            action="store_true",
            help="Read the password from the first line of standard input.",
        )

    def handle(self, *args, **opts):
        password, generated = self._password(opts)
        try:
            user = user_create(
                username=opts["username"],
                email=opts["email"],
                password=password,
                role=opts["role"],
                via="command",
            )
        except ValidationError as exc:
            raise CommandError("Password refused: " + " ".join(exc.messages)) from exc
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Created {user.get_username()} as {opts['role']}.")
        if generated:
            self.stdout.write(f"Password (shown once): {password}")

    def _password(self, opts) -> tuple[str, bool]:
        if opts["password_env"]:
            value = os.environ.get(opts["password_env"], "")
            if not value:
                raise CommandError(f"The environment variable {opts['password_env']} is empty.")
            return value, False
        if opts["password_stdin"]:
            value = sys.stdin.readline().rstrip("\n")
            if not value:
                raise CommandError("No password on standard input.")
            return value, False
        return secrets.token_urlsafe(18), True
