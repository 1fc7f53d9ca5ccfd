"""A stand-in for Typesense, written from its API reference (typesense.org/docs, "Collections"
and "Documents"), because no Typesense server can be installed on these machines. It checks
the wire format as strictly as Typesense would and records what it was sent:

- every request carries `X-TYPESENSE-API-KEY` with the key (else 401);
- POST /collections: a schema {name, fields: [{name, type, facet?, optional?}],
  default_sorting_field?}; 201 with the schema, 409 when the name exists;
- GET /collections/{c}: 200 with the schema, 404 when there is none;
- POST /collections/{c}/documents/import?action=create|upsert|update|emplace: a JSONL body,
  one JSON object a line; always 200, with one JSON line per document, {"success": true} or
  {"success": false, "error": ..., "document": ...}: a document must have a string `id`
  (upsert), every non-optional field of the schema, and each field of its schema type;
- DELETE /collections/{c}/documents/{id}: 200 with the document, 404 when there is none."""
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

TYPES = {"string", "int32", "int64", "float", "bool", "string[]", "int32[]", "int64[]", "float[]", "bool[]", "auto", "string*",
         "object", "object[]", "geopoint", "image"}


def type_ok(kind, value):
    if kind.endswith("[]"):
        return isinstance(value, list) and all(type_ok(kind[:-2], v) for v in value)
    if kind == "string":
        return isinstance(value, str)
    if kind == "int32":
        return isinstance(value, int) and not isinstance(value, bool) and -2**31 <= value < 2**31
    if kind == "int64":
        return isinstance(value, int) and not isinstance(value, bool) and -2**63 <= value < 2**63
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    return True


class TypesenseRecorder:
    def __init__(self, api_key):
        self.api_key = api_key
        self.collections = {}   # name -> schema
        self.documents = {}     # name -> {id: document}
        self.requests = []      # (method, path, query, body bytes, status)
        self.imports = []       # (collection, action, [documents], [answer lines])
        self.deletes = []       # (collection, id, status)
        self.fail_next_documents = 0   # refuse this many documents (one line each), as Typesense would a bad one
        self.lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status, body):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return status

            def handle_any(self, method):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with recorder.lock:
                    if self.headers.get("X-TYPESENSE-API-KEY") != recorder.api_key:
                        status = self.answer(401, {"message": "Forbidden - a valid `x-typesense-api-key` header must be sent."})
                    else:
                        status = recorder.route(self, method, parts.path, parse_qs(parts.query), body)
                    recorder.requests.append((method, parts.path, parts.query, body, status))

            def do_POST(self):
                self.handle_any("POST")

            def do_DELETE(self):
                self.handle_any("DELETE")

            def do_GET(self):
                self.handle_any("GET")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def route(self, h, method, path, query, body):
        if method == "POST" and path == "/collections":
            return self.create_collection(h, body)
        m = re.fullmatch(r"/collections/([^/]+)", path)
        if method == "GET" and m:
            name = unquote(m.group(1))
            return h.answer(200, self.collections[name]) if name in self.collections else h.answer(404, {"message": "Not Found"})
        m = re.fullmatch(r"/collections/([^/]+)/documents/import", path)
        if method == "POST" and m:
            return self.import_documents(h, unquote(m.group(1)), query, body)
        m = re.fullmatch(r"/collections/([^/]+)/documents/([^/]+)", path)
        if method == "DELETE" and m:
            name, doc_id = unquote(m.group(1)), unquote(m.group(2))
            if name not in self.collections:
                return h.answer(404, {"message": "Not Found"})
            doc = self.documents[name].pop(doc_id, None)
            status = 200 if doc is not None else 404
            self.deletes.append((name, doc_id, status))
            return h.answer(200, doc) if doc is not None else h.answer(404, {"message": f"Could not find a document with id: {doc_id}"})
        return h.answer(404, {"message": "Not Found"})

    def create_collection(self, h, body):
        try:
            schema = json.loads(body)
        except ValueError:
            return h.answer(400, {"message": "Bad JSON."})
        if not isinstance(schema, dict) or not isinstance(schema.get("name"), str) or not schema["name"]:
            return h.answer(400, {"message": "Parameter `name` is required."})
        fields = schema.get("fields")
        if not isinstance(fields, list) or not fields:
            return h.answer(400, {"message": "Parameter `fields` is required."})
        names = set()
        for f in fields:
            if not isinstance(f, dict) or not isinstance(f.get("name"), str) or f.get("type") not in TYPES:
                return h.answer(400, {"message": f"Field `{f}` has an invalid data type."})
            for flag in ("facet", "optional", "index", "sort", "infix"):
                if flag in f and not isinstance(f[flag], bool):
                    return h.answer(400, {"message": f"The `{flag}` property of the field `{f['name']}` should be a boolean."})
            unknown = set(f) - {"name", "type", "facet", "optional", "index", "sort", "infix", "locale"}
            if unknown:
                return h.answer(400, {"message": f"unknown field properties {sorted(unknown)}"})
            names.add(f["name"])
        sorting = schema.get("default_sorting_field")
        if sorting is not None:
            field = next((f for f in fields if f["name"] == sorting), None)
            if field is None:
                return h.answer(400, {"message": f"Default sorting field is defined as `{sorting}` but is not found in the schema."})
            if field["type"] not in ("int32", "int64", "float") or field.get("optional"):
                return h.answer(400, {"message": f"Default sorting field `{sorting}` is not a sortable type."})
        if schema["name"] in self.collections:
            return h.answer(409, {"message": f"A collection with name `{schema['name']}` already exists."})
        self.collections[schema["name"]] = schema
        self.documents[schema["name"]] = {}
        return h.answer(201, dict(schema, num_documents=0))

    def check_document(self, schema, doc, action):
        if not isinstance(doc, dict):
            return "Bad JSON: not a properly formed document."
        if "id" in doc and not isinstance(doc["id"], str):
            return "Document's `id` field should be a string."
        if action in ("upsert", "update", "emplace") and "id" not in doc:
            return "Document's `id` field is required for this action."
        for f in schema["fields"]:
            if f["name"] not in doc or doc[f["name"]] is None:
                if f.get("optional"):
                    continue
                return f"Field `{f['name']}` has been declared in the schema, but is not found in the document."
            if not type_ok(f["type"], doc[f["name"]]):
                return f"Field `{f['name']}` must be {'an' if f['type'][0] in 'aeiou' else 'a'} {f['type']}."
        return None

    def import_documents(self, h, name, query, body):
        if name not in self.collections:
            return h.answer(404, {"message": "Collection not found"})
        action = query.get("action", ["create"])[0]
        if action not in ("create", "upsert", "update", "emplace"):
            return h.answer(400, {"message": "Parameter `action` must be one of create, upsert, update, emplace."})
        lines, docs = [], []
        for raw in body.decode("utf-8").split("\n"):
            if not raw.strip():
                continue
            try:
                doc = json.loads(raw)
            except ValueError:
                lines.append({"success": False, "error": "Bad JSON.", "document": raw})
                continue
            docs.append(doc)
            error = self.check_document(self.collections[name], doc, action)
            if error is None and self.fail_next_documents > 0:
                self.fail_next_documents -= 1
                error = "Could not write to the on-disk store (refused by the test)."
            if error:
                lines.append({"success": False, "error": error, "document": raw})
                continue
            self.documents[name][doc["id"]] = doc
            lines.append({"success": True})
        self.imports.append((name, action, docs, lines))
        return h.answer(200, "\n".join(json.dumps(line) for line in lines).encode())
