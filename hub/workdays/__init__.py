"""China's official working-day calendar for the hub's deadlines (DOMAIN.md, "Time limits").

``chinese-calendar`` knows 2004–2026; later years come from holiday tables an operator imports
(``table.py``: one TOML file per State Council notice). ``WorkCalendar`` (``calendar.py``)
combines both, refuses any day of a year it does not know, and does the deadline arithmetic
of the 差评 workflow under a stated counting convention (``DayCount``; the jurisdiction
profile in hub.policy chooses it). Nothing here depends on another package of the project.
"""

from hub.workdays.calendar import (
    CHINA_TZ,
    DEFAULT_DAY_COUNT,
    MAX_PERIOD_DAYS,
    PACKAGE_SOURCE,
    PACKAGE_YEARS,
    DayCount,
    DayUnit,
    Period,
    WorkCalendar,
    YearSource,
    end_of_day,
    import_holiday_table,
    local_date,
    local_moment,
    start_of_day,
)
from hub.workdays.errors import CalendarError, HolidayTableError
from hub.workdays.table import (
    FORMAT,
    FORMAT_VERSION,
    Holiday,
    HolidayTable,
    load_holiday_table,
    parse_holiday_table,
)

__all__ = [
    "CHINA_TZ",
    "DEFAULT_DAY_COUNT",
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_PERIOD_DAYS",
    "PACKAGE_SOURCE",
    "PACKAGE_YEARS",
    "CalendarError",
    "DayCount",
    "DayUnit",
    "Holiday",
    "HolidayTable",
    "HolidayTableError",
    "Period",
    "WorkCalendar",
    "YearSource",
    "end_of_day",
    "import_holiday_table",
    "load_holiday_table",
    "local_date",
    "local_moment",
    "parse_holiday_table",
    "start_of_day",
]
