"""Writes logistic-reference.json: scikit-learn's multinomial logistic regression (solver lbfgs, L2 penalty,
intercept not penalised) on a small fixed problem, for test/train/lbfgs.test.ts.

Problem: 90 rows x 6 features, 4 classes (features ~ N(class mean, 1.2), seeded numpy, float32), plus 40
held-out rows. For each C: coef_ (classes x features), intercept_, accuracy on train and held-out rows, and
the objective's minimum as mean cross-entropy + 1/(2 C n) ||W||^2 (scikit-learn minimises C*sum(CE) +
||W||^2/2, the same up to the factor C*n).
Run with Debian's python3 (python3-sklearn): /usr/bin/python3 make_logistic_reference.py > logistic-reference.json
"""
import json
import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression

rng = np.random.default_rng(3)
D, C, N, NH = 6, 4, 90, 40
means = rng.normal(0, 1.0, size=(C, D))
def rows(n):
    y = rng.integers(0, C, size=n)
    x = (means[y] + rng.normal(0, 1.2, size=(n, D))).astype(np.float32)
    return x, y
x, y = rows(N)
xh, yh = rows(NH)
fits = []
for c in [0.01, 0.3, 10.0]:
    m = LogisticRegression(C=c, solver="lbfgs", tol=1e-10, max_iter=100000, multi_class="multinomial")
    m.fit(x.astype(np.float64), y)
    p = m.predict_proba(x.astype(np.float64))
    ce = float(-np.mean(np.log(p[np.arange(N), y])))
    obj = ce + float(np.sum(m.coef_ ** 2)) / (2 * c * N)
    fits.append({"C": c, "l2": 1 / (c * N), "coef": m.coef_.reshape(-1).tolist(), "intercept": m.intercept_.tolist(),
                 "train_acc": float(m.score(x, y)), "held_acc": float(m.score(xh, yh)), "objective": obj, "n_iter": int(m.n_iter_[0])})
print(json.dumps({
    "about": __doc__.strip().splitlines()[0], "sklearn": sklearn.__version__, "dim": D, "classes": C,
    "train": {"features": [float(v) for v in x.reshape(-1)], "labels": y.tolist()},
    "held": {"features": [float(v) for v in xh.reshape(-1)], "labels": yh.tolist()},
    "fits": fits,
}))
