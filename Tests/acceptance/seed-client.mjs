// Acceptance: the seed's own frontend client (MultipartUploadService in
// shared/seed/aws-s3-storage.txt), unchanged, uploads a file through the dev stack.
// The class is read out of the seed at run time, so what runs is the seed's text.
//
//   node Tests/acceptance/seed-client.mjs   (ASSETD_URL, ASSETD_TOKEN, ASSETD_SEED, ASSETD_CA)
import { readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { File as BufferFile } from "node:buffer";

const File = globalThis.File ?? BufferFile;


const seed = readFileSync(process.env.ASSETD_SEED, "utf8");
const start = seed.indexOf("export class MultipartUploadService {");
const end = seed.indexOf("}File Upload Component", start);
if (start < 0 || end < 0) throw new Error("MultipartUploadService not found in the seed");
const source = seed.slice(start, end + 1).replace("export class", "class");
const MultipartUploadService = new Function("File", `${source}\nreturn MultipartUploadService;`)(File);

// The seed calls this.axios.get(path, {params}) and this.axios.post(path, body): a minimal axios.
const base = process.env.ASSETD_URL;
const auth = { Authorization: `Bearer ${process.env.ASSETD_TOKEN}` };
async function check(response) {
  const data = await response.json();
  if (!response.ok) throw new Error(`${response.status} ${JSON.stringify(data)}`);
  return { data };
}
const axios = {
  get: (path, { params } = {}) => fetch(`${base}${path}?${new URLSearchParams(params)}`, { headers: auth }).then(check),
  post: (path, body) =>
    fetch(`${base}${path}`, { method: "POST", headers: { ...auth, "Content-Type": "application/json" }, body: JSON.stringify(body) }).then(check),
};

const bytes = randomBytes(12 * 1024 * 1024 + 12345);
bytes[0] = 0xff; bytes[1] = 0xd8; bytes[2] = 0xff; // looks like a JPEG; type comes from File.type here
const file = new File([bytes], "seed.jpg", { type: "image/jpeg" });
const service = new MultipartUploadService(axios, 1);
const progress = [];
const result = await service.uploadFile(file, (p) => progress.push(p.percentage));

const { data } = await axios.get("/s3/download-url", { params: { workspaceId: 1, assetId: result.assetId } });
const downloaded = Buffer.from(await (await fetch(data.url)).arrayBuffer());
if (!downloaded.equals(bytes)) throw new Error("the downloaded bytes differ from the uploaded ones");
if (progress.at(-1) !== 100) throw new Error(`progress ended at ${progress.at(-1)}`);
console.log(`seed client: uploaded ${bytes.length} bytes as ${result.key} in ${progress.length} parts; download identical`);
