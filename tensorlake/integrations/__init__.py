"""Features above the api that users reach through dataset methods (``ds.pytorch()``,
``ds.batches()``), imported on first use by ``tensorlake.api.hooks`` so that
``import tensorlake`` loads none of them, nor their optional extras (torch).

- ``loader/``: epoch order, sharding and resume state, and reading batches (torch-free);
- ``batches.py``: ``ds.batches()``, the torch-free iterator;
- ``pytorch.py``: ``ds.pytorch()``, the loader on top of ``torch.utils.data.DataLoader``.
"""

__all__: list[str] = []
