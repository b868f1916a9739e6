"""The molecular search app's settings: the shared ones (fingerprints are chosen per
collection, in its options, not per process)."""

from common import Settings


class MoleculeSettings(Settings):
    pass
