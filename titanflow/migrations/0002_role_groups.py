"""The three role groups. The old single "marketer" group becomes "marketers", members and all,
so everyone who used the app before keeps using it."""

from django.db import migrations

OLD_MARKETER_GROUP = "marketer"
# Literal names, not settings: a migration must mean the same thing whenever it runs.
GROUPS = ("admins", "marketers", "viewers")


def create_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    old = Group.objects.filter(name=OLD_MARKETER_GROUP).first()
    if old is not None and not Group.objects.filter(name="marketers").exists():
        old.name = "marketers"
        old.save(update_fields=["name"])
    elif old is not None:
        marketers = Group.objects.get(name="marketers")
        marketers.user_set.add(*old.user_set.all())
        old.delete()
    for name in GROUPS:
        Group.objects.get_or_create(name=name)


def remove_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.filter(name__in=("admins", "viewers")).delete()
    Group.objects.filter(name="marketers").update(name=OLD_MARKETER_GROUP)


class Migration(migrations.Migration):
    dependencies = [
        ("titanflow", "0001_audit_entry"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
