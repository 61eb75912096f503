"""The emulator's AWS Resource Groups Tagging API: GetResources over the KMS
store's keys (the only resources the emulator has), with AWS's documented
semantics. Requests reach it already SigV4-verified (service "tagging") and
validated against botocore's resourcegroupstaggingapi model.

- Resources: every KMS key that is or ever was tagged (keys never tagged are
  not listed, as AWS lists only "tagged or previously tagged" resources), in
  any key state, PendingDeletion included, until KMS deletes the key.
- ResourceTypeFilters: "kms" or "kms:key" select the keys; any other type
  selects nothing; no filter selects everything.
- TagFilters: ANDed; a filter's Values are ORed; a filter without values
  matches any value of its key (an empty value included).
- ResourceARNList: only those ARNs (not combinable with paging parameters).
- Paging: ResourcesPerPage 1-100 (default DEFAULT_PAGE_SIZE: AWS does not
  document its own), TagsPerPage 100-500 (a resource without tags counts as
  one; a resource is never split), both at once end the page at the first
  limit reached. PaginationToken is opaque, bound to the query's filters and
  valid for 15 minutes of the emulator clock (then
  PaginationTokenExpiredException); the last page carries "".
- Not emulated: tag policies (IncludeComplianceDetails,
  ExcludeCompliantResources are InvalidParameterException here)."""
import base64
import hashlib
import json

try:
    from .model_check import ApiError
except ImportError:  # run as a script
    from model_check import ApiError

DEFAULT_PAGE_SIZE = 50
TOKEN_LIFETIME_SECONDS = 15 * 60
KMS_KEY_TYPES = ("kms", "kms:key")


def _invalid(message):
    return ApiError("InvalidParameterException", message)


def _query_fingerprint(params):
    query = {"TagFilters": params.get("TagFilters", []),
             "ResourceTypeFilters": params.get("ResourceTypeFilters", [])}
    return hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()[:16]


def _encode_token(after_seq, issued, fingerprint):
    text = json.dumps({"after": after_seq, "issued": issued, "query": fingerprint})
    return base64.urlsafe_b64encode(text.encode()).decode()


def _decode_token(token):
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["after"]), float(data["issued"]), str(data["query"])
    except (ValueError, TypeError, KeyError):
        raise _invalid("The PaginationToken is not one this service returned.") from None


def _matches_types(types):
    return not types or any(t in KMS_KEY_TYPES for t in types)


def _matches_tags(tags, filters):
    for tag_filter in filters:
        key = tag_filter["Key"]
        if key not in tags:
            return False
        values = tag_filter.get("Values") or []
        if values and tags[key] not in values:
            return False
    return True


class TaggingApi:
    """GetResources for one KmsStore; clock() is the emulator's epoch seconds."""

    def __init__(self, store, clock):
        self.store = store
        self.clock = clock

    @staticmethod
    def _check_params(params):
        paging = [name for name in ("PaginationToken", "ResourcesPerPage", "TagsPerPage")
                  if name in params]
        if "ResourceARNList" in params and paging:
            raise _invalid("ResourceARNList cannot be combined with " + ", ".join(paging))
        per_page = params.get("ResourcesPerPage")
        if per_page is not None and not 1 <= per_page <= 100:
            raise _invalid(f"ResourcesPerPage {per_page} is out of range: 1 to 100")
        tags_per_page = params.get("TagsPerPage")
        if tags_per_page is not None and not 100 <= tags_per_page <= 500:
            raise _invalid(f"TagsPerPage {tags_per_page} is out of range: 100 to 500")
        if any("Key" not in tag_filter for tag_filter in params.get("TagFilters", [])):
            raise _invalid("Each TagFilter needs a Key")
        if params.get("IncludeComplianceDetails") or params.get("ExcludeCompliantResources"):
            raise _invalid("The emulator does not emulate tag policies "
                           "(IncludeComplianceDetails, ExcludeCompliantResources)")

    def _start_after(self, params, fingerprint):
        token = params.get("PaginationToken", "")
        if not token:
            return 0
        after, issued, query = _decode_token(token)
        if query != fingerprint:
            raise _invalid("The PaginationToken belongs to a request with other filters.")
        if self.clock() - issued > TOKEN_LIFETIME_SECONDS:
            raise ApiError("PaginationTokenExpiredException",
                           "The PaginationToken has expired (tokens are valid for 15 minutes).")
        return after

    def _selected(self, params):
        arns = params.get("ResourceARNList")
        types = params.get("ResourceTypeFilters", [])
        filters = params.get("TagFilters", [])
        keys = sorted(self.store.keys.values(), key=lambda k: k.seq)
        return [k for k in keys
                if (k.ever_tagged or k.tags) and _matches_types(types)
                and (arns is None or k.arn in arns) and _matches_tags(k.tags, filters)]

    @staticmethod
    def _page(keys, per_page, tags_per_page):
        page, tag_count = [], 0
        for key in keys:
            weight = max(1, len(key.tags))
            if len(page) == per_page:
                break
            if tags_per_page is not None and page and tag_count + weight > tags_per_page:
                break
            page.append(key)
            tag_count += weight
        return page

    def GetResources(self, params):  # noqa: N802 (the AWS operation name)
        self._check_params(params)
        fingerprint = _query_fingerprint(params)
        after = self._start_after(params, fingerprint)
        per_page = params.get("ResourcesPerPage", DEFAULT_PAGE_SIZE)
        with self.store.lock:
            self.store.purge_deleted()
            remaining = [k for k in self._selected(params) if k.seq > after]
            page = self._page(remaining, per_page, params.get("TagsPerPage"))
            mappings = [{"ResourceARN": k.arn,
                         "Tags": [{"Key": name, "Value": value} for name, value in k.tags.items()]}
                        for k in page]
        token = ""
        if len(page) < len(remaining):
            token = _encode_token(page[-1].seq, self.clock(), fingerprint)
        return {"PaginationToken": token, "ResourceTagMappingList": mappings}
