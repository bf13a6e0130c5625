;; A valid module that is not a WASI command: it has no `_start` export. The container is
;; never created: it waits with reason CreateContainerError, the missing export in its message.
(module
  (memory (export "memory") 1)
  (func (export "main")))
