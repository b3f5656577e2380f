"""The code of a logged Atlas model (MLflow's "models from code"): MLflow runs this file to get the model.

``log_pyfunc`` and ``save_pyfunc`` pass this file's path as ``python_model``, so the logged model holds this file
and the ``atlas`` artifact folder, and neither a pickle nor a copy of the Atlas source: the Atlas that loads it is
the one installed (its requirements name ``gryphon-atlas``).
"""

import mlflow.models

from atlas.models._pyfunc import AtlasPyfunc

mlflow.models.set_model(AtlasPyfunc())
