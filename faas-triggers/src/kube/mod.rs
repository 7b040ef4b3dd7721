//! The Kubernetes events trigger: changes of Kubernetes objects of any kind
//! become calls, at least once, resuming where it stopped.
//!
//! - [`KubeTrigger`] watches one resource (kube's dynamic API: any built-in
//!   kind or custom resource, its plural found by discovery), in one
//!   namespace or all, filtered by label and field selectors;
//!   [`KubeTriggerConfig`] configures it.
//! - [`CheckpointStore`]: where it records what it handled (a file or a
//!   ConfigMap), so that a restart resumes there.
//! - [`KubeLag`] tells the autoscaler how many changes wait.
//!
//! # Events
//!
//! Each change reaches the function as a CloudEvent in binary mode:
//!
//! | attribute | value |
//! |---|---|
//! | `type` | [`EVENT_TYPE_ADDED`], [`EVENT_TYPE_MODIFIED`] or [`EVENT_TYPE_DELETED`] |
//! | `source` | the API path of the object's collection, e.g. `/apis/apps/v1/namespaces/shop/deployments` |
//! | `subject` | `NAMESPACE/NAME`, or `NAME` for a cluster-scoped object |
//! | `id` | `UID:RESOURCEVERSION:KIND-OF-CHANGE`, the same at every redelivery, so a function can deduplicate |
//! | `time` | the creation (added) or deletion (deleted) time, when known |
//! | data | the object as JSON (`application/json`): `Json<Deployment>` or `Json<serde_json::Value>` reads it |
//!
//! # What a restart means
//!
//! The trigger records, for every live object, the resourceVersion whose
//! change it handled, and the collection's resourceVersion up to which
//! every change it received was handled. Both move only after the call
//! succeeded (or the change is safe in the dead letter): at least once.
//!
//! - With a checkpoint whose resourceVersion the API server still keeps, a
//!   restart watches from there: every change made while it was stopped is
//!   delivered, in order, each intermediate version included.
//! - When that resourceVersion expired (`410 Gone`), when there is no
//!   checkpoint, and whenever the watch must list again (kube-runtime's
//!   watcher relists on `410 Gone`), the list is compared with the
//!   checkpoint, as an informer does: an object not in it is `added`, one at
//!   another resourceVersion is `modified` (the versions in between fold
//!   into the current one), one in it but no longer listed is `deleted`
//!   (its data then holds what was known: `apiVersion`, `kind`, name,
//!   namespace, uid and the last resourceVersion handled).
//! - A first start, with an empty checkpoint, delivers every existing
//!   object as `added`, as Knative's ApiServerSource does. Without a store
//!   ([`CheckpointStore::Memory`]) every start is a first start.
//!
//! The attempt number of a change counts its deliveries since the trigger
//! started (a restart begins again at 1).
//!
//! # RBAC
//!
//! The trigger's service account needs `get`, `list` and `watch` on the
//! resource watched (a Role in the namespace, or a ClusterRole for all
//! namespaces or a cluster-scoped kind), and for a ConfigMap checkpoint
//! `get`, `create` and `patch` on `configmaps` in the checkpoint's
//! namespace. Discovery (`/api`, `/apis`) is open to every authenticated
//! user by default. For Deployments in namespace `shop`:
//!
//! ```yaml
//! apiVersion: rbac.authorization.k8s.io/v1
//! kind: Role
//! metadata: { name: deployment-events, namespace: shop }
//! rules:
//!   - apiGroups: ["apps"]
//!     resources: ["deployments"]
//!     verbs: ["get", "list", "watch"]
//!   - apiGroups: [""]
//!     resources: ["configmaps"]
//!     verbs: ["get", "create", "patch"]
//! ```
//!
//! A `403 Forbidden` is not fatal: the trigger waits for the permission
//! with back-off while the runtime's `/_/ready` answers 503 and says what
//! it waits for.

mod checkpoint;
mod config;
mod event;
mod lag;
mod ledger;
mod trigger;

pub use config::{ChangeKind, CheckpointStore, KubeTriggerConfig};
pub use event::{EVENT_TYPE_ADDED, EVENT_TYPE_DELETED, EVENT_TYPE_MODIFIED};
pub use lag::KubeLag;
pub use trigger::KubeTrigger;
