"""Badge payloads from event scanners: vCard 3/4 and MECARD parsed into a contact."""

from __future__ import annotations

# ---------------------------------------------------------------------------------------
# Badge payloads: vCard 3/4 and MECARD


class BadgeFormatError(ValueError):
    """A QR payload that is neither a well-formed vCard nor a MECARD."""


def _unescape_vcard(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            out.append("\n" if nxt in "nN" else nxt)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _split_unescaped(value: str, sep: str) -> list[str]:
    parts, buf, i = [], [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            buf.append(value[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    parts.append("".join(buf))
    return parts


def parse_vcard(text: str) -> dict[str, str]:
    """Contact fields from a vCard 3.0 or 4.0 (the first card when there are several)."""
    raw_lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines: list[str] = []
    for line in raw_lines:
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += line[1:]  # folded continuation line
        elif line.strip():
            lines.append(line.strip())
    if not lines or lines[0].upper() != "BEGIN:VCARD":
        raise BadgeFormatError("vCard must start with BEGIN:VCARD")
    try:
        end = next(i for i, line in enumerate(lines) if line.upper() == "END:VCARD")
    except StopIteration:
        raise BadgeFormatError("vCard has no END:VCARD") from None
    version: str | None = None
    fields: dict[str, str] = {}
    for number, line in enumerate(lines[1:end], start=2):
        if ":" not in line:
            raise BadgeFormatError(f"vCard line {number} has no ':' ({line[:40]!r})")
        head, value = line.split(":", 1)
        name_params = head.split(";")
        name = name_params[0].split(".")[-1].upper()  # drop group prefix "item1."
        params = {p.split("=", 1)[0].upper(): p.split("=", 1)[-1].lower() for p in name_params[1:]}
        if name == "VERSION":
            version = value.strip()
        elif name == "N":
            parts = [_unescape_vcard(p) for p in _split_unescaped(value, ";")]
            if parts and parts[0].strip():
                fields.setdefault("last_name", parts[0].strip())
            if len(parts) > 1 and parts[1].strip():
                fields.setdefault("first_name", parts[1].strip())
        elif name == "FN":
            fields.setdefault("_fn", _unescape_vcard(value).strip())
        elif name == "EMAIL":
            # Prefer the work / preferred address when a card carries several.
            if "email" not in fields or "work" in params.get("TYPE", "") or "PREF" in params:
                fields["email"] = _unescape_vcard(value).strip()
        elif name == "TEL":
            number_text = value.strip()
            if number_text.lower().startswith("tel:"):
                number_text = number_text[4:]
            if "tel" not in fields or "work" in params.get("TYPE", "") or "PREF" in params:
                fields["tel"] = _unescape_vcard(number_text)
        elif name == "ORG":
            parts = [_unescape_vcard(p).strip() for p in _split_unescaped(value, ";")]
            if parts and parts[0]:
                fields["company"] = parts[0]
            if len(parts) > 1 and parts[1]:
                fields["department"] = parts[1]
        elif name == "TITLE":
            fields["title"] = _unescape_vcard(value).strip()
        elif name == "URL":
            fields.setdefault("website", _unescape_vcard(value).strip())
        elif name == "ADR":
            parts = [_unescape_vcard(p).strip() for p in _split_unescaped(value, ";")]
            if len(parts) > 3 and parts[3]:
                fields.setdefault("city", parts[3])
            if len(parts) > 6 and parts[6]:
                fields.setdefault("country", parts[6])
        elif name == "NOTE":
            fields.setdefault("notes", _unescape_vcard(value).strip())
    if version not in ("2.1", "3.0", "4.0"):
        raise BadgeFormatError(f"vCard VERSION must be 3.0 or 4.0, not {version!r}")
    fn = fields.pop("_fn", None)
    if fn and "first_name" not in fields and "last_name" not in fields:
        first, _, last = fn.rpartition(" ")
        fields["first_name"], fields["last_name"] = (first, last) if first else (fn, "")
    if "tel" in fields:
        fields["phone"] = fields.pop("tel")
    return {k: v for k, v in fields.items() if v}


def parse_mecard(text: str) -> dict[str, str]:
    """Contact fields from a MECARD QR payload (``MECARD:N:Doe,Jane;EMAIL:...;;``)."""
    body = text.strip()
    if not body.upper().startswith("MECARD:"):
        raise BadgeFormatError("MECARD must start with MECARD:")
    body = body[len("MECARD:") :]
    if not body.endswith(";"):
        raise BadgeFormatError("MECARD must end with ';;'")
    fields: dict[str, str] = {}
    for item in _split_unescaped(body, ";"):
        if not item:
            continue
        if ":" not in item:
            raise BadgeFormatError(f"MECARD field {item[:30]!r} has no ':'")
        key, value = item.split(":", 1)
        key = key.strip().upper()
        value = _unescape_vcard(value).strip()
        if key == "N":
            last, _, first = value.partition(",")
            fields["last_name"], fields["first_name"] = last.strip(), first.strip()
        elif key == "EMAIL":
            fields.setdefault("email", value)
        elif key == "TEL":
            fields.setdefault("phone", value)
        elif key == "ORG":
            fields["company"] = value
        elif key == "TITLE":
            fields["title"] = value
        elif key == "URL":
            fields["website"] = value
        elif key == "ADR":
            parts = [p.strip() for p in value.split(",")]
            if len(parts) >= 7:
                fields["city"], fields["country"] = parts[3], parts[6]
        elif key == "NOTE":
            fields["notes"] = value
    if not fields:
        raise BadgeFormatError("MECARD carries no fields")
    return {k: v for k, v in fields.items() if v}


def parse_badge(text: str) -> dict[str, str]:
    """Contact fields from a QR badge payload: vCard or MECARD, else ``BadgeFormatError``."""
    stripped = text.lstrip()
    if stripped.upper().startswith("BEGIN:VCARD"):
        return parse_vcard(stripped)
    if stripped.upper().startswith("MECARD:"):
        return parse_mecard(stripped)
    raise BadgeFormatError("badge payload is neither a vCard (BEGIN:VCARD) nor a MECARD")
