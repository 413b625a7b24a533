"""What every layer shares: settings, the error hierarchy, domain types, periods, logs,
metrics and the per-user answer cache store.

May import: nothing of chainfolio outside `core` (every other package may import it).
"""
