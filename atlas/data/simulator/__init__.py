"""The market simulator: several exchanges trading one pair, with a planted lead-lag signal of known strength.

Example:
    >>> from atlas.data.simulator import MarketSimulator, SimulatorConfig
    >>> sim = MarketSimulator(SimulatorConfig(days=0.05, exchanges="bitstamp,coinbase", signal=0.3))
    >>> sim.lead_lag.leader.name, [e.name for e in sim.lead_lag.followers]
    ('BITSTAMP_BTC_USD', ['COINBASE_BTC_USD'])
"""

from atlas.data.simulator._config import SimulatorConfig, max_signal
from atlas.data.simulator._simulator import LeadLag, MarketSimulator, SimulatedDay, SimulationReport
from atlas.data.simulator._venue import VenueDay

__all__ = [
    "LeadLag",
    "MarketSimulator",
    "SimulatedDay",
    "SimulationReport",
    "SimulatorConfig",
    "VenueDay",
    "max_signal",
]
