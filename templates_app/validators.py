"""Meta's object ids, which TitanFlow puts into Graph API paths: digits only, so a value like
"../_sim/world" can never make the server call another path."""

from django.core.validators import RegexValidator

GRAPH_ID_PATTERN = r"^\d{1,32}$"

graph_id = RegexValidator(
    GRAPH_ID_PATTERN, "A WhatsApp id is a number of up to 32 digits.", code="invalid"
)
