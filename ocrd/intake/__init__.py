"""Safe intake of untrusted files: the file gate, header checks per format, PDF pages, decoding.

Cheapest checks first: a regular file read without following links, size, magic bytes, dimensions
and page counts from the headers, then decoding under OpenCV's limits (set in the environment before
`cv2` is first imported, so it is imported lazily here) and normalisation. Every refusal is an
`InputError` with a stable reason code. It may import `ocrd.config`, `ocrd.errors` and `ocrd.logs`;
it is the only importer of `pypdfium2`, and the only package that decodes untrusted bytes with OpenCV.
"""
