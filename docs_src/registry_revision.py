from evergreen import registry
from evergreen.errors import ConflictError

seen = registry.revision("churn")                    # read when you decide
registry.promote("churn", 1, alias="staging", reason="load test", expected_revision=seen)  # made: nothing changed
try:                                                 # a second change decided on the same state
    registry.promote("churn", 1, alias="demo", reason="for sales", expected_revision=seen)
except ConflictError as e:
    print(e)                                         # names both revisions; nothing was changed
