from sklearn.ensemble import HistGradientBoostingClassifier

from evergreen.examples.subscriptions import simulate_day
from evergreen.training import OnnxModel, check_parity, convert

columns = ["tenure_months", "monthly_fee", "support_calls", "logins_per_week", "days_since_login"]
train_rows, test_rows = simulate_day(1, 2000), simulate_day(2, 1000)
X_train, X_test = train_rows[columns], test_rows[columns]
model = HistGradientBoostingClassifier(max_iter=50).fit(X_train, train_rows["churned"])

conversion = convert(model, X_train.head(100))      # never raises for an unconvertible model
if conversion.ok:
    parity = check_parity(model, conversion.onnx, X_test)
    if parity.verified:
        fast = OnnxModel(conversion.onnx)            # .predict(X), .predict_proba(X), like the model
else:
    print(conversion.reason)                         # e.g. "skl2onnx 1.20.0 has no converter for sklearn.kernel_ridge.KernelRidge"
