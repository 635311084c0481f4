"""``model-health demo``: the monitoring loop end to end on this machine, with no setup."""
