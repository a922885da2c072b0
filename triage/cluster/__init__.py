"""Stage "cluster": unit vectors in, issues out (their stable ids: ``triage.identity``).

Pure functions over numpy arrays; the database layer stores what they return.

No parameter is a share of the data: each is a count of statements, a cosine or a number of
spreads, and means the same for 200 statements as for 100,000.

1. Centre and smooth. Vectors are centred on the data's own mean (the direction all of one
   product's feedback shares says nothing about which issue a statement is in), then each unit
   is averaged with its ``smooth_neighbors`` nearest units a few times: paraphrases of one
   complaint pull together and stray wording is damped, the part of UMAP's neighbour graph
   that helps here, at a fraction of its cost.
2. HDBSCAN, ``leaf`` selection, on PCA of the smoothed vectors: every dense group of at least
   ``min_issue_size`` units is a candidate issue. HDBSCAN looks at ``max_units`` units at most
   (a fixed random sample above that), and that fixes the granularity. Below ``max_units`` the
   smallest issue is ``min_issue_size`` statements; above it, HDBSCAN sees the same number of
   units whatever the total, so 3,000 and 100,000 statements of the same feedback give the same
   issues. A similarity threshold cannot do this on real data: the pieces one Banking77 intent
   splits into at a finer scale are no more alike than two neighbouring intents are (their
   centroid cosines and separations overlap), so merging cannot undo a finer look.
3. Merge candidates whose smoothed centroids have cosine >= ``merge_similarity``: leaf selection
   can cut one complaint into dense pieces.
4. Refine: every unit goes to its nearest centroid and the centroids are recomputed (k-means
   started from the candidates) for up to ``refine_steps`` rounds, so units outside the sample
   and outside HDBSCAN's dense cores shape the issues too. A group left with fewer than
   ``min_issue_size`` units is dissolved into its neighbours.
5. Calibrated attach. Smoothing drags a lone off-topic statement towards its neighbours, so
   every member is checked on its own vector against its issue's centroid, with a threshold its
   fellow members set: their median cosine minus ``attach_deviations`` robust spreads (1.4826 x
   the median absolute deviation, never narrower than the median issue's). A tight issue takes
   only close units and a broad one broader ones; a unit far below its nearest issue's members
   stays unassigned (-1). When more than ``attach_max_share`` of the units would stay out, the
   number of spreads grows until that share does: never more stay out once issues form. Each
   issue's threshold comes back with it, to place new units between re-clusterings.

Cause is part of how issues form. When the caller passes ``causes`` (one row per unit: its
ticket's category probabilities), each unit is clustered on its wording and its cause side by
side, the cause weighing ``cause_weight`` times the wording: for unit-length parts the joined
cosine is (cosine of wording + cause_weight² x cosine of causes) / (1 + cause_weight²). Two
complaints about one screen, one about a redraw bug (ui) and one about a stale feed (data), then
sit apart although their words are close. ``facets`` (``facet_rows``: the product features of the
model outputs each unit's ticket is linked to) join the same way at ``feature_weight``: two model
faults of one product, one in its test generator and one in its inline completions, share a cause
and much of their vocabulary, but not the feature their customers used. A unit whose ticket is
linked to no output borrows the features of its nearest linked units (``impute_facets``).
``contexts`` (one row per unit: its whole ticket's vector) join at ``context_weight``: each
statement is read in the context of its ticket, so "I'm the sales engineer" or "Could you take a
look" goes where the rest of its ticket goes, and a ticket's statements stay together unless
their words pull them apart. Centroids, similarities and thresholds come back in wording space,
where new units are placed between re-clusterings.
"""

from triage.cluster.blocks import facet_rows, impute_facets, in_wording_space, joined
from triage.cluster.clusterer import Clusterer, ClusterParams
from triage.cluster.steps import (
    MAD_TO_SPREAD,
    Clustering,
    calibrated_thresholds,
    merge_close_clusters,
    refine,
)
from triage.cluster.vectors import assign, centroids_of, nearest_neighbors, normalize, smooth

__all__ = [
    "MAD_TO_SPREAD",
    "ClusterParams",
    "Clusterer",
    "Clustering",
    "assign",
    "calibrated_thresholds",
    "centroids_of",
    "facet_rows",
    "impute_facets",
    "in_wording_space",
    "joined",
    "merge_close_clusters",
    "nearest_neighbors",
    "normalize",
    "refine",
    "smooth",
]
