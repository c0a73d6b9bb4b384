"""Write the JSON Schema of an environment file: ``python -m stacks.schema`` (a test keeps it current)."""

import json

from stacks.config import SCHEMA_FILE, json_schema

if __name__ == "__main__":
    SCHEMA_FILE.write_text(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
    print(f"wrote {SCHEMA_FILE}")
