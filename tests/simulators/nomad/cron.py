"""Cron expressions as Nomad's periodic jobs read them (hashicorp/cronexpr).

Five fields (minute hour day-of-month month day-of-week), six (plus year) or seven
(second first, then the six), `*`, `?`, lists, ranges, steps, month and weekday
names, and the `@yearly`/`@annually`/`@monthly`/`@weekly`/`@daily`/`@hourly`
shorthands. As in cron, when both day fields are restricted a day matching
either one matches. Not supported (ValueError): `L`, `W`, `#`."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

_MONTHS = {n: i for i, n in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), 1)}
_DAYS = {n: i for i, n in enumerate("SUN MON TUE WED THU FRI SAT".split())}
_SHORTHANDS = {"@yearly": "0 0 0 1 1 * *", "@annually": "0 0 0 1 1 * *", "@monthly": "0 0 0 1 * * *",
               "@weekly": "0 0 0 * * 0 *", "@daily": "0 0 0 * * * *", "@hourly": "0 0 * * * * *"}
# (low, high, names) of second, minute, hour, day of month, month, day of week, year
_FIELDS = [(0, 59, {}), (0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, _MONTHS), (0, 7, _DAYS), (1970, 2099, {})]


def _value(text: str, names: dict) -> int:
    text = text.upper()
    if text in names:
        return names[text]
    if not text.isdigit():
        raise ValueError("invalid cron value %r" % text)
    return int(text)


def _field(text: str, low: int, high: int, names: dict) -> set[int] | None:
    """The values a field allows (None: any)."""
    if text in ("*", "?"):
        return None
    out: set[int] = set()
    for item in text.split(","):
        rng, _slash, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError("invalid cron step in %r" % item)
        if rng in ("*", "?"):
            start, end = low, high
        elif "-" in rng:
            a, b = rng.split("-", 1)
            start, end = _value(a, names), _value(b, names)
        else:
            start = _value(rng, names)
            end = high if step_text else start
        if not (low <= start <= high and low <= end <= high) or start > end:
            raise ValueError("cron value out of range in %r" % item)
        out.update(range(start, end + 1, step))
    return out


def parse(spec: str) -> list[set[int] | None]:
    """The seven fields of ``spec``."""
    spec = _SHORTHANDS.get(spec.strip(), spec.strip())
    parts = spec.split()
    if len(parts) == 5:
        parts = ["0", *parts, "*"]
    elif len(parts) == 6:
        parts = ["0", *parts]
    elif len(parts) != 7:
        raise ValueError("invalid cron expression %r: 5, 6 or 7 fields" % spec)
    if any(c in p for p in parts for c in "LW#"):
        raise ValueError("cron expression %r: L, W and # are not supported by the simulator" % spec)
    fields = [_field(p, lo, hi, names) for p, (lo, hi, names) in zip(parts, _FIELDS, strict=True)]
    if fields[5] is not None and 7 in fields[5]:
        fields[5] = (fields[5] - {7}) | {0}
    return fields


def matches(fields: list[set[int] | None], when: datetime.datetime) -> bool:
    sec, minute, hour, dom, month, dow, year = fields

    def ok(allowed, value):
        return allowed is None or value in allowed

    weekday = (when.weekday() + 1) % 7  # Sunday = 0
    if dom is not None and dow is not None:
        day = when.day in dom or weekday in dow
    else:
        day = ok(dom, when.day) and ok(dow, weekday)
    return day and ok(sec, when.second) and ok(minute, when.minute) and ok(hour, when.hour) and \
        ok(month, when.month) and ok(year, when.year)


def slot(spec: str, now: float, tz: str = "UTC") -> tuple[str, int, bool]:
    """(spec, the current slot, whether spec fires in it): the slot is the current second for a
    spec with a seconds field other than 0, else the current minute."""
    fields = parse(spec)
    when = datetime.datetime.fromtimestamp(int(now), ZoneInfo(tz))
    if fields[0] == {0}:
        return spec, int(now) // 60, matches(fields, when.replace(second=0))
    return spec, int(now), matches(fields, when)
