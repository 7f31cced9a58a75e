"""``torchrun --nproc_per_node=N -m scalezero_agents.distributed ...``: one rank of distributed training."""

import sys

from scalezero_agents.distributed.launch import main

sys.exit(main())
