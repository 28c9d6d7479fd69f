"""Privacy stage: presidio PII detection and typed placeholders."""

import os

# tldextract (presidio's email validator) reads this once, when it is first imported: an empty
# list makes it use its bundled public-suffix snapshot, so scrubbing never tries the network.
# Set here, in the package, so it runs before any module of the stage imports presidio.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
