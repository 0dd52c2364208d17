import csv
from decimal import Decimal
from pathlib import Path

from django.db import migrations

RATE_CARD = Path(__file__).resolve().parent.parent / "data" / "rate_card.csv"


def seed(apps, schema_editor):
    Rate = apps.get_model("campaigns", "Rate")
    with RATE_CARD.open(newline="") as handle:
        for row in csv.DictReader(handle):
            Rate.objects.get_or_create(
                category=row["category"],
                market=row["market"],
                defaults={"price": Decimal(row["price"]), "currency": row["currency"]},
            )


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0009_deliverability_guard")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
