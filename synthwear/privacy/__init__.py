"""Person-level differentially private training (DP-SGD through Opacus).

One front door, ``train_private``; the accounting (noise calibration, what was spent) lives in
``accounting`` so it can be read and tested without training anything.
"""

from synthwear.privacy.accounting import PrivacyAccounting
from synthwear.privacy.training import train_private

__all__ = ["PrivacyAccounting", "train_private"]
