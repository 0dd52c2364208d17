"""Write .env with fresh secrets when it does not exist yet; never overwrite one."""

import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ("SECRET_KEY", "META_APP_SECRET", "META_VERIFY_TOKEN", "FIELD_ENCRYPTION_KEY")


def main() -> int:
    target = ROOT / ".env"
    if target.exists():
        return 0
    lines = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            if key in GENERATED:
                value = secrets.token_urlsafe(32)
            elif key == "DEBUG":
                value = "true"
            elif key == "WHATSAPP_GRAPH_URL":
                value = "http://127.0.0.1:8900"
            lines.append(f"{key}={value}")
        else:
            lines.append(line)
    target.write_text("\n".join(lines) + "\n")
    target.chmod(0o600)
    print(f"wrote {target} with generated secrets", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
