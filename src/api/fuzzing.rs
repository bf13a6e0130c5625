//! Entry points for fuzzing manifest decoding and patching (see `fuzz/` and the README).
//! Each takes arbitrary bytes and must never panic, whatever they hold.

use serde_json::Value;

use super::resources::by_kind;
use super::{codec, defaults, patch, validation};

/// Decodes a YAML stream and runs every document through normalisation, defaulting and
/// validation, as a create would.
pub fn decode_manifest(data: &[u8]) {
    let Ok(documents) = codec::decode_yaml_stream(data) else {
        return;
    };
    for mut doc in documents {
        let api_version = doc["apiVersion"].as_str().unwrap_or_default().to_string();
        let kind = doc["kind"].as_str().unwrap_or_default().to_string();
        let Some(resource) = by_kind(&api_version, &kind) else {
            continue;
        };
        if let Some(meta) = doc.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert(
                "uid".into(),
                Value::String("00000000-0000-0000-0000-000000000000".into()),
            );
        }
        let Ok(mut object) = (resource.normalize)(doc) else {
            continue;
        };
        defaults::apply_defaults(resource.group, resource.kind, &mut object);
        let old = object.clone();
        let _ = validation::validate(
            resource.group,
            resource.kind,
            resource.namespaced,
            &object,
            None,
        );
        let _ = validation::validate(
            resource.group,
            resource.kind,
            resource.namespaced,
            &object,
            Some(&old),
        );
    }
}

/// Splits the input at the first NUL into a target object and a patch (both JSON), then
/// applies the patch as JSON patch, merge patch and strategic merge patch.
pub fn patch_object(data: &[u8], schemas: &serde_json::Map<String, Value>) {
    let split = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    let (target, rest) = data.split_at(split);
    let patch_bytes = rest.get(1..).unwrap_or_default();
    let Ok(target) = serde_json::from_slice::<Value>(target) else {
        return;
    };
    let _ = patch::json_patch(&target, patch_bytes);
    if let Ok(p) = serde_json::from_slice::<Value>(patch_bytes) {
        let _ = patch::merge_patch(&target, &p);
        for root in [
            "io.k8s.api.apps.v1.Deployment",
            "io.k8s.api.core.v1.Pod",
            "io.k8s.api.core.v1.Service",
        ] {
            let _ = patch::strategic_merge_patch(&target, &p, schemas, root);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::openapi::OpenApi;

    /// A small deterministic generator, so the smoke test is repeatable.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
    }

    fn mutate(seed: &[u8], rng: &mut Lcg) -> Vec<u8> {
        let mut out = seed.to_vec();
        for _ in 0..1 + rng.next() % 8 {
            if out.is_empty() {
                out.push(b'{');
            }
            let at = (rng.next() as usize) % out.len();
            match rng.next() % 4 {
                0 => out[at] = (rng.next() % 256) as u8,
                1 => {
                    out.remove(at);
                }
                2 => out.insert(at, b"{}[]:,-\"\n 0a"[(rng.next() % 12) as usize]),
                _ => {
                    let end = (at + (rng.next() as usize % 16)).min(out.len());
                    let chunk = out[at..end].to_vec();
                    out.splice(at..at, chunk);
                }
            }
        }
        out
    }

    #[test]
    fn mutated_manifests_and_patches_never_panic() {
        let seeds: Vec<Vec<u8>> = ["nginx-deploy.yaml", "app-stack.yaml"]
            .iter()
            .map(|f| {
                std::fs::read(format!(
                    "{}/examples/manifests/{f}",
                    env!("CARGO_MANIFEST_DIR")
                ))
                .unwrap()
            })
            .collect();
        let openapi = OpenApi::build(&crate::server::served_resources());
        let deploy =
            serde_json::to_vec(&serde_yaml::from_slice::<Value>(&seeds[0]).unwrap()).unwrap();
        let patch_seed = [deploy.as_slice(), b"\0", br#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"x"},{"$patch":"delete","name":"y"}]}}},"metadata":{"labels":null}}"#].concat();
        let mut rng = Lcg(0x5eed);
        for i in 0..3000 {
            let seed = &seeds[i % seeds.len()];
            decode_manifest(&mutate(seed, &mut rng));
            patch_object(&mutate(&patch_seed, &mut rng), openapi.schemas());
        }
    }
}
