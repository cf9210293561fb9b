"""What tasks read and write besides their outputs: the namespace KV store (:mod:`.kv`),
secrets and their masking (:mod:`.secrets`), and internal storage of ``kestra://`` files
(:mod:`.storage`).
"""
