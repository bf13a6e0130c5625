//! Client commands (`skiff apply|get|delete`), speaking the Kubernetes API like kubectl.
