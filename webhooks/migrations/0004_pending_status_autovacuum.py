from django.db import migrations


class Migration(migrations.Migration):
    """Statuses that arrive before the engine has written their message are kept here for a
    second or two, then deleted: a queue's churn. With 113,000 dead rows behind 191 live ones
    (left by bench runs on a Postgres without autovacuum) the processor's look for due rows,
    run every batch, took 30 ms instead of well under one. Autovacuum's default waits for a
    fifth of the table to die; here it vacuums after every 5,000 deletes."""

    dependencies = [("webhooks", "0003_pending_status_phone")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE webhooks_pendingstatus SET (autovacuum_vacuum_scale_factor = 0, "
            "autovacuum_vacuum_threshold = 5000)",
            reverse_sql="ALTER TABLE webhooks_pendingstatus RESET (autovacuum_vacuum_scale_factor, "
            "autovacuum_vacuum_threshold)",
        ),
    ]
