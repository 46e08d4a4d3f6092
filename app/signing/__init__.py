"""Digital signatures at workflow steps: the provider hook, what is signed, and verification."""

import warnings

from cryptography.utils import CryptographyDeprecationWarning

# pyHanko imports cryptography's DSA module for old signatures; Nentang never uses DSA, and the
# warning would otherwise greet every start of the service and the worker.
warnings.filterwarnings("ignore", message="DSA is deprecated",
                        category=CryptographyDeprecationWarning)
