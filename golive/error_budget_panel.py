"""The dashboard's "budget gone in" panel, beside the error budget gauge: the time until the
budget is spent at the current burn (`golive rules`' `golive:error_budget_exhausted_in:seconds`),
per track and prediction window, coloured by the policy's horizons (red under the page's, orange
under the ticket's). No sample means nothing burns: the panel says "never at this rate"."""

from __future__ import annotations

from grafana_foundation_sdk.builders import stat
from grafana_foundation_sdk.builders.dashboard import ThresholdsConfig
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.models.common import BigValueColorMode, BigValueGraphMode
from grafana_foundation_sdk.models.dashboard import DataSourceRef, Threshold, ThresholdsMode

from golive.rules import EXHAUSTION_SERIES, RuleOptions

__all__ = ["TITLE", "exhaustion_panel"]

TITLE = "Error budget gone in, at this rate"
NEVER = "never at this rate"


def exhaustion_panel(options: RuleOptions, datasource: DataSourceRef) -> stat.Panel:
    """A stat panel of 6 columns: "5 hours, 40 minutes" per track and window ("canary 1h")."""
    series = f'{EXHAUSTION_SERIES}{{sloth_service="$service",track=~"$track"}}'
    steps = [Threshold(value=None, color="red"), Threshold(value=options.page_horizon_hours * 3600, color="orange"),
             Threshold(value=options.ticket_horizon_hours * 3600, color="green")]
    query = (Dataquery().expr(f"min by (track, burn_window) ({series})").legend_format("{{track}} {{burn_window}}")
             .ref_id("A").instant().datasource(datasource))
    return (stat.Panel().title(TITLE)
            .description(f"remaining x period / burn; red under {options.page_horizon_hours:g} h (page), orange "
                         f"under {options.ticket_horizon_hours:g} h (ticket); no data: {NEVER}")
            .unit("dtdurations").no_value(NEVER).height(8).span(6).datasource(datasource)
            .color_mode(BigValueColorMode.BACKGROUND).graph_mode(BigValueGraphMode.NONE)
            .thresholds(ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps))
            .with_target(query))
