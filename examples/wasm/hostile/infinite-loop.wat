;; An infinite loop that never calls the host. Only a CPU limit slows it, and only the pod's
;; activeDeadlineSeconds or a delete ends it: skiff interrupts it through wasmtime's epochs.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $forever
      (br $forever))))
