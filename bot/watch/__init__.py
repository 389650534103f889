"""Observers of a live bot: the heartbeat file, Prometheus metrics, alerts, the trail's self-check
and the anchor poster. Told after the fact (`bot.core.observers`, the trail's listeners); they
never trade and never import the cycle or an adapter."""
