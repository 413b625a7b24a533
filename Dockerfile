FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY chainfolio ./chainfolio
RUN pip install --no-cache-dir . && useradd -m chainfolio
USER chainfolio
EXPOSE 8000
CMD ["chainfolio", "serve", "--host", "0.0.0.0"]
