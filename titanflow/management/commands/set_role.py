from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from titanflow.access import ROLES
from titanflow.users import user_set_role

NONE = "none"


class Command(BaseCommand):
    help = "Move a user to another role; 'none' removes every role and so all access to the app."

    def add_arguments(self, parser):
        parser.add_argument("--username", required=True, help="The user to change.")
        parser.add_argument(
            "--role",
            required=True,
            choices=(*ROLES, NONE),
            help="The user's only role from now on: " + ", ".join((*ROLES, NONE)),
        )

    def handle(self, *args, **opts):
        user = get_user_model().objects.filter(username=opts["username"]).first()
        if user is None:
            raise CommandError(f"No user named {opts['username']!r}.")
        role = None if opts["role"] == NONE else opts["role"]
        user_set_role(user=user, role=role, via="command")
        self.stdout.write(f"{user.get_username()} is now {opts['role']}.")
        if user.is_superuser:
            self.stdout.write("Note: a superuser stays an admin whatever their groups say.")
