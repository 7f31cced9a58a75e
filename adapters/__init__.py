"""scalezero_adapters: every task behind one ``TaskSpec`` (Atari, DMC via shimmy, Jericho, Gymnasium).

>>> from scalezero_adapters import make_task, make_suite, MultiTaskEnv
>>> factory, spec = make_task("gym/CartPole-v1")
>>> env = factory("train")                       # or "eval": the evaluation protocol
>>> tasks = make_suite("classic")                # [Task(factory, spec), ...]
>>> env = MultiTaskEnv(tasks)                    # one env, unified Dict spaces, for SB3 / Tianshou

Heavy dependencies (ale-py, dm_control, jericho) are imported only when a task of that family is built.
"""

from ._common import EnvFactory, Mode, Task
from .atari import AtariEnv, make_atari_vector_env
from .dmc import DMCEnv, select_gl_backend
from .gym import GymEnv
from .jericho import (
    FALLBACK_COMMAND,
    STORY_DIR_ENV,
    VALID_ACTIONS_CACHE,
    DictionaryObjectExtractor,
    JerichoEnv,
    OfflineViolation,
    resolve_story_file,
)
from .multitask import (
    MultiTaskEnv,
    MultiTaskLayout,
    TaskView,
    make_multitask_vector_env,
    multitask_env_fns,
    task_view,
)
from .registry import UnknownTaskError, list_tasks, make_task
from .scores import ATARI8, ATARI26, ATARI_SCORES, DMC18, DMC_TASKS, JERICHO4, JERICHO_GAMES
from .spec import TaskSpec
from .suites import SUITES, make_suite

__all__ = [
    "ATARI8",
    "ATARI26",
    "ATARI_SCORES",
    "DMC18",
    "DMC_TASKS",
    "FALLBACK_COMMAND",
    "JERICHO4",
    "JERICHO_GAMES",
    "STORY_DIR_ENV",
    "SUITES",
    "VALID_ACTIONS_CACHE",
    "AtariEnv",
    "DMCEnv",
    "DictionaryObjectExtractor",
    "EnvFactory",
    "GymEnv",
    "JerichoEnv",
    "Mode",
    "MultiTaskEnv",
    "MultiTaskLayout",
    "OfflineViolation",
    "Task",
    "TaskSpec",
    "TaskView",
    "UnknownTaskError",
    "list_tasks",
    "make_atari_vector_env",
    "make_multitask_vector_env",
    "make_suite",
    "make_task",
    "multitask_env_fns",
    "resolve_story_file",
    "select_gl_backend",
    "task_view",
]
