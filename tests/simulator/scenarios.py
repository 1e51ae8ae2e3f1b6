"""Small scenarios for the tests: a busy hour at three windows with every habit turned up."""

from __future__ import annotations

import tomllib
from typing import Any

from simulator.scenario import Scenario, parse_scenario

BUSY_HOUR = """
[hall]
name = "测试大厅"
case_prefix = "T"
opening = "09:00"
seed = 7
call_gap_s = 5

[arrivals]
rate_per_hour = 40

[service]
distribution = "exponential"
mean_s = 60
min_s = 20
max_s = 300

[rating]
levels = { 1 = 0.5, 2 = 0.2, 3 = 0.1, 4 = 0.1, 5 = 0.1 }
no_rating = 0.1
phone_qr = 0.1
repeat_press = 0.3
press_delay_s = [1, 5]

[staff]
forget_invite = 0.15
self_rating_per_hour = 6

[[items]]
code = "330203-JD-0001"
name = "居民身份证换领"
dept_code = "11330203MB0123456D"

[[items]]
code = "330203-SB-0012"
name = "社会保险参保登记"
dept_code = "11330203002578913Q"
weight = 2

[[windows]]
id = "W01"
label = "综合窗口 01"

[[windows.shifts]]
staff_id = "S1"
name = "王小明"
number = "A1"
start = "09:00"
end = "09:30"
breaks = [{ start = "09:10", minutes = 3 }]

[[windows.shifts]]
staff_id = "S2"
name = "李娜"
number = "A2"
start = "09:30"
end = "10:00"

[[windows]]
id = "W02"
label = "综合窗口 02"
shifts = [{ staff_id = "S3", name = "张伟", number = "A3", start = "09:00", end = "10:00" }]

[[windows]]
id = "W03"
label = "综合窗口 03"

[[windows.shifts]]
staff_id = "S4"
name = "刘芳"
number = "A4"
start = "09:05"
end = "10:00"
self_rating_per_hour = 0
forget_invite = 0
"""


def busy_hour_data() -> dict[str, Any]:
    return tomllib.loads(BUSY_HOUR)


def busy_hour() -> Scenario:
    return parse_scenario(busy_hour_data())
