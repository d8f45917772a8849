#!/usr/bin/env python3
# set_metadata.py: adds or replaces string keys in a safetensors file's __metadata__, tensor data
# untouched (the header is re-padded to 8 bytes; the file is replaced atomically).
#   tools/set_metadata.py FILE KEY=VALUE...
# Used once to record sample_steps = 100 in the shipped concept models (models/README.md).
import json, struct, sys
path = sys.argv[1]
raw = open(path, 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
meta = hdr.setdefault('__metadata__', {})
for kv in sys.argv[2:]:
    k, v = kv.split('=', 1)
    meta[k] = v
text = json.dumps(hdr, separators=(',', ':')).encode()
text += b' ' * (-len(text) % 8)
open(path + '.tmp', 'wb').write(struct.pack('<Q', len(text)) + text + raw[8 + n:])
import os; os.replace(path + '.tmp', path)
