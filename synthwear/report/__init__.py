"""The run's self-contained HTML report (see ``page``) and the builders evaluators use for their sections."""

from synthwear.report.page import write_report

__all__ = ["write_report"]
