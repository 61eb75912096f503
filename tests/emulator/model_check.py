"""Validates request parameters against botocore's service models (KMS, STS,
resourcegroupstaggingapi), the way AWS does: wrong JSON types are
SerializationExceptions; missing required members, lengths, ranges, enums and
patterns are collected into one ValidationException ("N validation errors
detected: ...")."""
import base64
import binascii
import re

import botocore.session


class ApiError(Exception):
    """An AWS error answer: code ("ValidationException"), message, HTTP status."""

    def __init__(self, code, message, status=400):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


# Members whose values never appear in error text (the model does not mark them).
SECRET_MEMBERS = frozenset({"webIdentityToken", "secretAccessKey", "sessionToken", "tokenCode"})
_SESSION = botocore.session.get_session()
_MODELS = {}
_INPUT_SHAPES = {}
_PATTERNS = {}


def service_model(service):
    """botocore's model for "kms", "sts" or "resourcegroupstaggingapi", loaded once."""
    model = _MODELS.get(service)
    if model is None:
        model = _SESSION.get_service_model(service)
        _MODELS[service] = model
    return model


def operation_names(service):
    return service_model(service).operation_names


def input_shape(service, operation):
    key = (service, operation)
    if key not in _INPUT_SHAPES:
        _INPUT_SHAPES[key] = service_model(service).operation_model(operation).input_shape
    return _INPUT_SHAPES[key]


def _compiled(pattern):
    if pattern not in _PATTERNS:
        try:
            _PATTERNS[pattern] = re.compile(pattern)
        except re.error:
            _PATTERNS[pattern] = None
    return _PATTERNS[pattern]


def _lower_camel(name):
    return name[:1].lower() + name[1:]


def _serialization_error(path, expected):
    return ApiError("SerializationException", f"Expected {expected} at '{path}'")


class _Checker:
    """Walks one request; collects constraint violations; decodes blobs in place."""

    def __init__(self, reject_unknown):
        self.violations = []
        self.reject_unknown = reject_unknown

    def violation(self, shape, value, path, constraint):
        secret = shape.metadata.get("sensitive") or path.rsplit(".", 1)[-1] in SECRET_MEMBERS
        shown = "" if secret else f" '{value}'"
        if value is None:
            shown = " null"
        self.violations.append(
            f"Value{shown} at '{path}' failed to satisfy constraint: {constraint}")

    def check(self, shape, value, path):
        kind = shape.type_name
        handler = getattr(self, "_check_" + kind, None)
        if handler is None:
            return value
        return handler(shape, value, path)

    def _check_structure(self, shape, value, path):
        if not isinstance(value, dict):
            raise _serialization_error(path or shape.name, "a JSON object")
        members = shape.members
        for name in value:
            if name not in members and self.reject_unknown:
                raise ApiError(
                    "SerializationException",
                    f"Unknown member '{name}' in {shape.name} (the emulator rejects unknown "
                    "members to catch misspelt parameters)")
        out = {}
        for name in shape.required_members:
            if value.get(name) is None:
                self.violation(members[name], None, self._join(path, name),
                               "Member must not be null")
        for name, member_value in value.items():
            if member_value is None or name not in members:
                continue
            out[name] = self.check(members[name], member_value, self._join(path, name))
        return out

    @staticmethod
    def _join(path, name):
        return f"{path}.{_lower_camel(name)}" if path else _lower_camel(name)

    def _check_list(self, shape, value, path):
        if not isinstance(value, list):
            raise _serialization_error(path, "a JSON array")
        self._check_size(shape, value, path, len(value))
        return [self.check(shape.member, item, f"{path}.{index + 1}.member")
                for index, item in enumerate(value)]

    def _check_map(self, shape, value, path):
        if not isinstance(value, dict):
            raise _serialization_error(path, "a JSON object")
        return {self.check(shape.key, k, path): self.check(shape.value, v, f"{path}.{k}")
                for k, v in value.items()}

    def _check_string(self, shape, value, path):
        if not isinstance(value, str):
            raise _serialization_error(path, "a JSON string")
        self._check_size(shape, value, path, len(value))
        enum = shape.enum
        if enum and value not in enum:
            self.violation(shape, value, path,
                           "Member must satisfy enum value set: [" + ", ".join(enum) + "]")
        pattern = shape.metadata.get("pattern")
        if pattern:
            regex = _compiled(pattern)
            if regex is not None and not regex.fullmatch(value):
                self.violation(shape, value, path,
                               f"Member must satisfy regular expression pattern: {pattern}")
        return value

    def _check_integer(self, shape, value, path):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _serialization_error(path, "a JSON integer")
        minimum = shape.metadata.get("min")
        maximum = shape.metadata.get("max")
        if minimum is not None and value < minimum:
            self.violation(shape, value, path,
                           f"Member must have value greater than or equal to {minimum}")
        if maximum is not None and value > maximum:
            self.violation(shape, value, path,
                           f"Member must have value less than or equal to {maximum}")
        return value

    _check_long = _check_integer

    def _check_boolean(self, shape, value, path):
        if not isinstance(value, bool):
            raise _serialization_error(path, "a JSON boolean")
        return value

    def _check_timestamp(self, shape, value, path):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _serialization_error(path, "a JSON number (epoch seconds)")
        return value

    def _check_blob(self, shape, value, path):
        if not isinstance(value, str):
            raise _serialization_error(path, "a base64 JSON string")
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError("SerializationException",
                           f"Value at '{path}' is not valid base64") from None
        self._check_size(shape, data, path, len(data))
        return data

    def _check_size(self, shape, value, path, size):
        minimum = shape.metadata.get("min")
        maximum = shape.metadata.get("max")
        shown = value if isinstance(value, str) else "[...]"
        if minimum is not None and size < minimum:
            self.violation(shape, shown, path,
                           f"Member must have length greater than or equal to {minimum}")
        if maximum is not None and size > maximum:
            self.violation(shape, shown, path,
                           f"Member must have length less than or equal to {maximum}")


def validate(service, operation, params, reject_unknown=True):
    """Checks params (a dict parsed from the request) for operation; returns a
    copy with blob members base64-decoded to bytes. Raises ApiError."""
    shape = input_shape(service, operation)
    if shape is None:
        return {}
    checker = _Checker(reject_unknown)
    cleaned = checker.check(shape, params, "")
    if checker.violations:
        count = len(checker.violations)
        noun = "error" if count == 1 else "errors"
        raise ApiError("ValidationException",
                       f"{count} validation {noun} detected: " + "; ".join(checker.violations))
    return cleaned
