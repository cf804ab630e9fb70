// Validate ServiceMonitor/PodMonitor documents (a JSON array on stdin) with the validators
// that @kubernetes-models/prometheus-operator compiles from prometheus-operator's CRD schemas.
// Prints one line per document: "ok KIND NAME" or "invalid KIND NAME: errors".
import { PodMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";

const models = { PodMonitor, ServiceMonitor };
let input = "";
for await (const chunk of process.stdin) input += chunk;
for (const doc of JSON.parse(input)) {
  const Model = models[doc.kind];
  const label = `${doc.kind} ${doc.metadata?.name}`;
  if (!Model) { console.log(`invalid ${label}: not a kind this checker knows`); continue; }
  try {
    new Model(doc).validate();
    console.log(`ok ${label}`);
  } catch (error) {
    console.log(`invalid ${label}: ${error.message}`);
  }
}
